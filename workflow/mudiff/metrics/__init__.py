"""Evaluation metrics of an unlearned model against retrain (SPEC, evaluation)."""
