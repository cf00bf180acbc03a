"""The tasks, one module per family; each declares `TASKS`, a list of gpt2.evaluate.types.Task, and
is found by gpt2.evaluate.registry without being listed anywhere."""
