"""The book's published figures, one table per chapter, so experiments print them beside fdl's.

Source: the book's text and its notebooks, as collected in the project's BOOK.md. ``None`` where the book
publishes no number. Accuracies are in percent, as the book prints them.
"""

from __future__ import annotations

CH01 = {
    "dS/dX (seed 190203)": [0.0852, -0.0557, -0.1121],
    "L (seed 190204)": 2.3755,
    "dL/dX[0,0] (seed 190204)": 0.2489,
}

CH02 = {  # Boston, test split of 152 rows
    "least squares": {"mae": 3.5671, "rmse": 5.0476},
    "linear regression": {"mae": 3.5644, "rmse": 5.0497},
    "two-layer net": {"mae": 2.5951, "rmse": 3.8851},
}

CH03 = {  # Boston, SGD 0.01, 50 epochs, batch 32, seed 20190501
    "linear": {"val_mse": [30.29, 28.47, 26.29, 25.54, 25.09], "mae": 3.52, "rmse": 5.01},
    "one hidden layer": {"val_mse": [27.43, 21.84, 18.92, 17.19, 16.21], "mae": 2.60, "rmse": 4.03},
    "two hidden layers": {"val_mse": [44.14, 25.28, 22.34, 16.50, 14.65], "mae": 2.45, "rmse": 3.82},
}

CH03_NOTEBOOK = {  # the notebook's printout (DLFS_code 03_dlfs/Code.ipynb): losses to 3 decimals
    "linear": {"val_mse": [30.293, 28.469, 26.293, 25.541, 25.087], "mae": 3.52, "rmse": 5.01},
    "one hidden layer": {"val_mse": [27.435, 21.839, 18.918, 17.195, 16.215], "mae": 2.60, "rmse": 4.03},
    "two hidden layers": {"val_mse": [44.143, 25.278, 22.339, 16.500, 14.655], "mae": 2.45, "rmse": 3.83},
}

CH04 = {  # MNIST accuracy (%), text / notebook
    "tanh + sigmoid, MSE": (72.58, 72.80),
    "softmax CE": (91.01, 90.92),
    "+ momentum": (95.51, 95.36),
    "+ linear decay": (95.91, 95.98),
    "+ exponential decay": (96.06, 95.75),
    "+ glorot, linear decay": (96.71, 96.69),
    "+ glorot, exponential decay": (96.71, 96.48),
    "+ dropout": (96.95, 96.77),
    "deep, dropout": (97.15, 97.34),
    "deep, no dropout": (96.52, 96.08),
    "relu hidden layer": (None, 71.84),
}

CH05 = {  # MNIST CNN accuracy (%) after one epoch
    "conv 32 channels (text)": 90.50,
    "conv 16 channels (notebook)": 90.31,
}

CH06 = {}  # the book reports only loss curves and samples for its character models

CH07 = {
    "boston": {"mse": 14.37},
    "convnet": {"accuracy": 96.98},
    "char lstm": {"ce": 2.33},
    "autoencoder": {"mse": 0.0693},
}
