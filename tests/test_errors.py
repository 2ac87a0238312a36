"""Every error conv2d raises names the argument, what it received and what it expected."""

import numpy as np
import pytest

import convlayer
from convlayer import conv2d, kernels

X = np.zeros((8, 8, 3))
K = np.zeros((3, 3, 3, 2))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(kernel=np.zeros((3, 3, 4, 8)), x=np.zeros((32, 32, 3))), ValueError,
         r"^kernel has 4 input channels but x has 3 \(kernel shape \(3, 3, 4, 8\), x shape \(32, 32, 3\)\)$"),
        (dict(kernel=np.zeros((3, 3, 2, 4)), groups=2, x=np.zeros((8, 8, 6))), ValueError,
         r"kernel has 2 input channels per group \(groups=2, so 4 in all\) but x has 6"),
        (dict(padding="smae"), ValueError,
         r"^padding must be 'same', 'same_lower', 'valid', 'full', an int, a pair or "
         r"\(\(top, bottom\), \(left, right\)\); got 'smae'$"),
        (dict(padding=(1, 2, 3)), ValueError, r"padding must be .*; got \(1, 2, 3\)"),
        (dict(padding=-1), ValueError, r"padding must be .*; got -1"),
        (dict(strides=(2, 0)), ValueError, r"^strides must be positive integers; got \(2, 0\)$"),
        (dict(strides=0), ValueError, r"^strides must be positive integers; got 0$"),
        (dict(strides=1.5), TypeError, r"^strides must be positive integers; got 1.5$"),
        (dict(dilation=(1, -2)), ValueError, r"^dilation must be positive integers; got \(1, -2\)$"),
        (dict(groups=2), ValueError, r"groups must divide both the input channels and the output "
                                     r"channels; got groups=2 with 3 input channels and 2 output"),
        (dict(groups=0), ValueError, r"^groups must be positive integers; got 0$"),
        (dict(kernel=np.zeros((9, 3, 3, 2)), padding="valid"), ValueError,
         r"kernel height 9 does not fit the padded input height 8 \(x height 8 \+ padding 0 \+ 0\)"),
        (dict(kernel=np.zeros((3, 3, 3, 2)), dilation=5, padding="valid"), ValueError,
         r"kernel height 11 does not fit the padded input height 8"),
        (dict(bias=np.zeros(3)), ValueError,
         r"^bias must be None, a scalar or have shape \(K,\) = \(2,\) for 2 output channels; got bias shape \(3,\)$"),
        (dict(bias=np.zeros((1, 2))), ValueError, r"bias .* got bias shape \(1, 2\)"),
        (dict(pad_mode="mirror"), ValueError,
         r"^pad_mode must be 'constant', 'reflect', 'symmetric', 'edge' or 'wrap' \(or PyTorch's "
         r"'zeros', 'replicate', 'circular'\); got 'mirror'$"),
        (dict(data_format="NWHC"), ValueError, r"data_format must be .*; got 'NWHC'"),
        (dict(x=np.zeros((8, 8, 3), dtype=complex)), TypeError,
         r"^x must be real; got complex dtype complex128"),
        (dict(kernel=K.astype(np.complex64)), TypeError, r"^kernel must be real; got complex dtype complex64"),
        (dict(x=np.full((8, 8, 3), "a")), TypeError,
         r"^x must have a numeric \(bool, integer or float\) dtype; got dtype <U1$"),
        (dict(x=np.zeros((8, 8, 3), dtype=object)), TypeError, r"x must have a numeric .* got dtype object"),
        (dict(bias=["a", "b"]), TypeError, r"^bias must have a numeric .* got dtype <U1$"),
        (dict(x=[[1, 2], [3]]), ValueError, r"^x could not be read as an array"),
        (dict(x=np.zeros((8, 8))), ValueError,
         r"x must be \(H, W, C\) or \(N, H, W, C\) for a 4-D kernel; got x shape \(8, 8\)"),
        (dict(x=np.zeros((8, 8, 3)), kernel=np.zeros((3, 3))), ValueError,
         r"a 2-D kernel \(Fh, Fw\) takes a 2-D x \(H, W\); got x shape \(8, 8, 3\)"),
        (dict(kernel=np.zeros(3)), ValueError, r"kernel must have 2, 3 or 4 dimensions.*got kernel shape \(3,\)"),
        (dict(x=np.zeros((2, 0, 8, 3)), padding="full", pad_mode="reflect"), ValueError,
         r"^pad_mode 'reflect' cannot fill padding from an empty image \(x height 0\); use pad_mode='constant'$"),
    ],
)
def test_conv2d_errors(kwargs, error, match):
    call = dict(x=X, kernel=K)
    call.update(kwargs)
    with pytest.raises(error, match=match):
        conv2d(call.pop("x"), call.pop("kernel"), **call)


def test_errors_come_before_any_work():
    """A bad bias on a huge input fails at once, without allocating the output."""
    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (64, 4096, 4096, 3), (0, 0, 0, 0))
    with pytest.raises(ValueError, match="bias"):
        conv2d(huge, np.zeros((3, 3, 3, 8), np.float32), np.zeros(7))


def test_kernel_helpers_errors():
    with pytest.raises(ValueError, match=r"^name must be one of 'edge', 'blur', .*; got 'edges'$"):
        kernels.get("edges")
    with pytest.raises(ValueError, match=r"filters must be 2-D and of one shape; got shapes \[\(3, 3\), \(2, 2\)\]"):
        kernels.stack(["edge", np.ones((2, 2))], channels=3)
    with pytest.raises(ValueError, match=r"channels must be a positive integer; got 0"):
        kernels.stack(["edge"], channels=0)
    with pytest.raises(ValueError, match=r"filters must name at least one filter"):
        kernels.stack([], channels=3)


def test_relu_rejects_non_numbers():
    with pytest.raises(TypeError, match=r"^x must have a numeric"):
        convlayer.relu(["a"])
