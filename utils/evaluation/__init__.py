"""Stage 4, evaluation: metrics, figures and report files, hand-crafted features
and scikit-learn baselines, cross-validated experiments and the notebooks'
genre-growth study. Imports only audio, data and models below it.
"""
