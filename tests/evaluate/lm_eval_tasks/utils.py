"""lm-evaluation-harness's own hellaswag preprocessing, re-exported for the fixture task."""
from lm_eval.tasks.hellaswag.utils import process_docs  # noqa: F401
