"""Churn and behaviour prediction: labels, model zoo, evaluation, explanations."""
