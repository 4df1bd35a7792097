"""Sample rows: activations and the softmax family."""
from . import Sample, away_from_zero, randn

SAMPLES = [
    Sample("relu", [away_from_zero(3, 4)]),
    Sample("leaky_relu", [away_from_zero(3, 4)]),  # float64: exported as Where (no ORT kernel)
    Sample("leaky_relu", [away_from_zero(3, 4)], {"alpha": 0.2}, label="slope"),
    Sample("leaky_relu", [away_from_zero(3, 4)], {"alpha": 0.2}, ort="f32", label="slope-f32"),
    Sample("elu", [away_from_zero(3, 4)]),  # float64: exported as Where/Exp (no ORT kernel)
    Sample("elu", [away_from_zero(3, 4)], {"alpha": 0.5}, label="alpha"),
    Sample("elu", [away_from_zero(3, 4)], {"alpha": 0.5}, ort="f32", label="alpha-f32"),
    Sample("sigmoid", [randn(3, 4) * 3], second_order=True),
    Sample("tanh", [randn(3, 4)], second_order=True),
    Sample("softmax", [randn(3, 5)], second_order=True),
    Sample("softmax", [randn(2, 3, 4)], {"axis": 1}, label="axis1"),
    Sample("log_softmax", [randn(3, 5)], second_order=True),
    Sample("log_softmax", [randn(2, 3, 4)], {"axis": 0}, label="axis0"),
]
