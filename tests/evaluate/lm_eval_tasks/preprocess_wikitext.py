"""lm-evaluation-harness's own wikitext functions, re-exported for the fixture task."""
from lm_eval.tasks.wikitext.preprocess_wikitext import process_results, wikitext_detokenizer  # noqa: F401
