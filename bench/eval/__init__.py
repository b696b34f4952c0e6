"""Scoring a split, protocols (folds), and metrics: recalls, ASP, PMRP, ECCV Caption."""
