"""GLUE's metrics for fine-tuned tasks, from scikit-learn and SciPy: accuracy, macro F1 and
Matthews correlation for classes and choices; Pearson and Spearman correlation (and MSE) for
regression."""

from __future__ import annotations

from typing import Sequence

from ..errors import FinetuneError


def classification_metrics(predicted: Sequence[int], gold: Sequence[int]) -> dict[str, float]:
    try:
        from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
    except ImportError:
        raise FinetuneError("classification metrics need scikit-learn: pip install 'gpt2[finetune]'") from None
    return {
        "accuracy": float(accuracy_score(gold, predicted)),
        "f1_macro": float(f1_score(gold, predicted, average="macro", zero_division=0)),
        "mcc": float(matthews_corrcoef(gold, predicted)),
    }


def regression_metrics(predicted: Sequence[float], gold: Sequence[float]) -> dict[str, float]:
    try:
        from scipy.stats import pearsonr, spearmanr
    except ImportError:
        raise FinetuneError("regression metrics need SciPy: pip install 'gpt2[finetune]'") from None
    n = len(gold)
    mse = sum((p - g) ** 2 for p, g in zip(predicted, gold)) / max(n, 1)
    constant = len(set(predicted)) < 2 or len(set(gold)) < 2  # correlation undefined
    return {
        "pearson": float("nan") if constant else float(pearsonr(predicted, gold).statistic),
        "spearman": float("nan") if constant else float(spearmanr(predicted, gold).statistic),
        "mse": float(mse),
    }
