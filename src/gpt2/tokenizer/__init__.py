"""OpenAI's GPT-2 byte-level BPE tokenizer, exact and offline, and training new vocabularies.

Split as tiktoken splits:

    encoder.py     Tokenizer (a thin wrapper around one tiktoken.Encoding), StreamDecoder,
                   the fingerprint; extra special tokens and the chat template
    files.py       the file formats (tiktoken ranks, vocab.json + merges.txt, encoder.json +
                   vocab.bpe, HF's tokenizer configs), ranks <-> merges, the directory writer
    gpt2_vocab.py  GPT-2's split regex, <|endoftext|>, the bundled ranks, the names meaning them
    byte_table.py  OpenAI's byte <-> character table that spells tokens in vocabulary files
    training.py    new vocabularies with HF `tokenizers`' BpeTrainer; the text chunker

Vocabulary strings in the JSON/merges files are bytes spelled with OpenAI's byte-to-unicode
table (`bytes_to_unicode`, from GPT-2's encoder.py). For GPT-2 the files we write equal OpenAI's
encoder.json / vocab.bpe byte for byte. tiktoken reproduces merges-based BPE only when ids follow
merge order: the loader checks it, and `train` produces vocabularies that do (256 byte tokens,
then one token per merge in order, then `<|endoftext|>`).

Nothing here imports torch: the data pipeline and its worker processes use it.
"""

from __future__ import annotations

# Every public name the single-module gpt2.tokenizer had stays importable from here.
from ..errors import TokenIdError, TokenizerError
from .byte_table import bytes_to_unicode
from .encoder import AllowedSpecial, StreamDecoder, Tokenizer
from .files import TOKENIZER_FILES, PathLike
from .gpt2_vocab import EOT, GPT2_PATTERN, GPT2_RANKS_SHA256
from .training import MAX_MIN_FREQUENCY, MAX_VOCAB_SIZE, MIN_VOCAB_SIZE, check_training_numbers

__all__ = ["Tokenizer", "StreamDecoder", "TokenIdError", "GPT2_PATTERN", "EOT", "bytes_to_unicode",
           "MIN_VOCAB_SIZE", "MAX_VOCAB_SIZE", "MAX_MIN_FREQUENCY", "check_training_numbers"]
