"""Training of the bundled models: the synthetic data (scenes, dates, induction sequences, reversal strings), the
one training loop, and the commands that retrain each model (python -m training.train_vit, train_induction,
train_dates, train_reverse)."""
