"""The jobs run on a trained predictor: predict, evaluate, screen and benchmark."""
