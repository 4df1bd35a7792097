"""Sample rows: resize (nearest, linear, cubic; coordinate modes; antialias; crop)."""
from . import Sample, randn


def _r(axes, scales, sizes, **attrs):
    return {"axes": axes, "scales": scales, "sizes": sizes, **attrs}


SAMPLES = [
    Sample("resize", [randn(1, 2, 3, 4)], _r((2, 3), (2.0, 1.5), (6, 6), mode="nearest")),
    Sample("resize", [randn(1, 2, 3, 4)], _r((2, 3), (2.0, 1.5), (6, 6), mode="nearest"),
           ort="f32", label="nearest-f32"),
    Sample("resize", [randn(2, 5, 4)], _r((1, 2), (0.6, 1.75), (3, 7), mode="linear"),
           ort="f32", label="linear-f32"),
    Sample("resize", [randn(2, 5, 4)], _r((1,), (1.6,), (8,), mode="linear",
                                          coordinate_transformation_mode="align_corners"),
           label="linear-align-corners"),
    Sample("resize", [randn(1, 1, 4, 4)], _r((2, 3), (1.5, 2.0), (6, 8), mode="cubic",
                                             exclude_outside=True, cubic_coeff_a=-0.5),
           ort="f32", label="cubic-exclude-f32"),
    Sample("resize", [randn(1, 1, 8, 6)], _r((2, 3), (0.5, 0.5), (4, 3), mode="linear",
                                             antialias=True), ort="f32", label="antialias"),
    Sample("resize", [randn(1, 1, 4, 5)], _r(
        (2, 3), (0.75, 0.8), (3, 4), rois=((0.2, 1.3), (0.1, 0.9)), mode="linear",
        from_sizes=True,
        coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=2.0),
        ort="f32", label="crop-extrapolate"),
]
