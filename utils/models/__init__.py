"""Stage 3, models: the model registry (names only, Keras-free), the CNN
architectures, musicnn and its transfer head, training, calibration, the Keras
backend, model cards and the predictor. Imports only audio and data below it.
"""
