"""Faithfulness, localisation and classification metrics: scores of explanations and predictions, apart from the methods."""
