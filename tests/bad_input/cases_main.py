"""Bad inputs to `gpt2` itself: no command, an unknown one, streams that cannot be used."""

from .harness import Case

CASES = [
    Case("main-no-command", (), match=None),
    Case("main-unknown-command", ("banana",), match=r"invalid choice: 'banana'"),
    Case("main-unknown-option", ("--banana",), match=r"unrecognized arguments: --banana"),
    Case("main-subcommand-unknown-option", ("info", "gpt2", "--banana"), match=r"unrecognized arguments"),
]
