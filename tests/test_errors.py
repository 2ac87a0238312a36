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
        (dict(x=np.zeros((2, 8, 8, 3)), kernel=np.zeros((3, 3, 2))), ValueError,
         r"^kernel has 2 input channels but x has 3 \(kernel shape \(3, 3, 2\), x shape \(2, 8, 8, 3\)\)$"),
        (dict(x=np.zeros((2, 3, 8, 8)), kernel=np.zeros((8, 4, 3, 3)), data_format="channels_first"), ValueError,
         r"^kernel has 4 input channels but x has 3 \(kernel shape \(8, 4, 3, 3\), x shape \(2, 3, 8, 8\)\)$"),
        (dict(padding="SAME_LOWER_"), ValueError, r"^padding must be .*; got 'SAME_LOWER_'$"),
        (dict(padding=""), ValueError, r"^padding must be .*; got ''$"),
        (dict(padding="causal"), ValueError, r"^padding must be .*; got 'causal'$"),
        (dict(padding=(1, -2)), ValueError, r"^padding must be .* of non-negative integers; got \(1, -2\)$"),
        (dict(padding=((0, 1), (-1, 0))), ValueError,
         r"^padding must be .* of non-negative integers; got \(\(0, 1\), \(-1, 0\)\)$"),
        (dict(padding=((1, 2, 3), (0, 0))), ValueError, r"^padding must be .*; got \(\(1, 2, 3\), \(0, 0\)\)$"),
        (dict(padding=1.5), TypeError, r"^padding must be .*; got 1.5$"),
        (dict(padding=None), TypeError, r"^padding must be .*; got None$"),
        (dict(strides=-1), ValueError, r"^strides must be positive integers; got -1$"),
        (dict(dilation=0), ValueError, r"^dilation must be positive integers; got 0$"),
        (dict(dilation=(0, 2)), ValueError, r"^dilation must be positive integers; got \(0, 2\)$"),
        (dict(x=np.zeros((8, 8, 4)), kernel=np.zeros((3, 3, 1, 6)), groups=4), ValueError,
         r"groups must divide both .*; got groups=4 with 4 input channels and 6 output channels"),
        (dict(x=np.zeros((8, 8, 4)), kernel=np.zeros((3, 3, 1, 4)), groups=3), ValueError,
         r"groups must divide both .*; got groups=3 with 4 input channels and 4 output channels"),
        (dict(groups=-2), ValueError, r"^groups must be positive integers; got -2$"),
        (dict(x=np.zeros((1, 8, 2, 1)), kernel=np.zeros((3, 3, 1, 1)), padding="valid"), ValueError,
         r"^kernel width 3 does not fit the padded input width 2 \(x width 2 \+ padding 0 \+ 0\)"),
        (dict(x=np.zeros((3, 3)), kernel=np.zeros((5, 5)), padding=((0, 1), (0, 1))), ValueError,
         r"^kernel height 5 does not fit the padded input height 4 \(x height 3 \+ padding 0 \+ 1\)"),
        (dict(x=np.zeros((2, 1, 6, 6)), kernel=np.zeros((1, 1, 7, 7)), padding="valid",
              data_format="channels_first"), ValueError,
         r"^kernel height 7 does not fit the padded input height 6 \(x height 6 \+ padding 0 \+ 0\)"),
        (dict(x=np.zeros((1, 1, 8, 3)), padding="valid"), ValueError,
         r"^kernel height 3 does not fit the padded input height 1 \(x height 1 \+ padding 0 \+ 0\)"),
        (dict(x=np.zeros((1, 0, 8, 3)), padding=1), ValueError,
         r"^kernel height 3 does not fit the padded input height 2 \(x height 0 \+ padding 1 \+ 1\)"),
        (dict(x=np.zeros((1, 0, 8, 3)), padding=((1, 1), (0, 0))), ValueError,
         r"^kernel height 3 does not fit the padded input height 2 \(x height 0 \+ padding 1 \+ 1\)"),
        (dict(x=np.zeros(6), kernel=np.zeros((3, 3))), ValueError,
         r"^a 2-D kernel \(Fh, Fw\) takes a 2-D x \(H, W\); got x shape \(6,\)"),
        (dict(x=np.zeros((1, 1, 6, 6, 1)), kernel=np.zeros((3, 3, 1, 1))), ValueError,
         r"^x must be \(H, W, C\) or \(N, H, W, C\) for a 4-D kernel; got x shape \(1, 1, 6, 6, 1\)"),
        (dict(kernel=np.zeros((3, 3, 1, 1, 1))), ValueError,
         r"^kernel must have 2, 3 or 4 dimensions.*got kernel shape \(3, 3, 1, 1, 1\)$"),
        (dict(kernel=np.full((3, 3, 3, 2), "a")), TypeError, r"^kernel must have a numeric .* got dtype <U1$"),
        (dict(kernel=np.zeros((3, 3, 3, 2), dtype=object)), TypeError,
         r"^kernel must have a numeric .* got dtype object$"),
        (dict(x=[["a", "b"], ["c", "d"]], kernel=np.ones((1, 1))), TypeError,
         r"^x must have a numeric .* got dtype <U1$"),
        (dict(bias=np.ones(2, dtype=np.complex128)), TypeError, r"^bias must be real; got complex dtype complex128"),
        (dict(bias=1j), TypeError, r"^bias must be real; got complex dtype complex128"),
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


def test_a_remembered_geometry_does_not_excuse_an_argument_of_another_type():
    # _validate.conv_geometry caches by value *and* type: 1.0 == 1 and True == 1 hash alike
    x, kernel = np.ones((1, 5, 5, 1)), np.ones((3, 3, 1, 1))
    convlayer.conv2d(x, kernel, strides=1, padding=1)
    convlayer.conv2d(x, kernel, strides=(1, 1), padding=((1, 1), (1, 1)))
    for bad in (dict(strides=1.0), dict(strides=True), dict(strides=(1.0, 1)), dict(padding=1.0), dict(padding=((1, 1), (1.0, 1)))):
        options = dict(dict(strides=1, padding=1), **bad)
        with pytest.raises((TypeError, ValueError)):
            convlayer.conv2d(x, kernel, **options)
    # a list (not hashable) is checked afresh, and gives the tuple's result
    np.testing.assert_array_equal(convlayer.conv2d(x, kernel, strides=[1, 1], padding=[[1, 1], [1, 1]]),
                                  convlayer.conv2d(x, kernel, strides=(1, 1), padding=((1, 1), (1, 1))))


def test_a_pytorch_layout_read_channels_last_is_told_about_data_format():
    """x (N, 3, H, W) with a PyTorch kernel (K, 3, Fh, Fw) and no data_format: the hint says which."""
    import torch

    x, weight = np.ones((2, 3, 32, 32), np.float32), np.ones((8, 3, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"^kernel has 5 input channels but x has 32 \(kernel shape \(8, 3, 5, 5\), "
                                         r"x shape \(2, 3, 32, 32\)\); x and kernel fit PyTorch's layout, .*: "
                                         r"pass data_format='channels_first'$"):
        conv2d(x, weight, padding="valid")
    # and the hint is right: with it, the call is PyTorch's
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weight)).numpy()
    np.testing.assert_allclose(conv2d(x, weight, padding="valid", data_format="channels_first"), expected,
                               rtol=1e-6)
    with pytest.raises(ValueError, match=r"; x and kernel fit the channels-last layout, .*: "
                                         r"pass data_format='channels_last' \(the default\)$"):
        conv2d(np.ones((2, 32, 32, 4)), np.ones((3, 3, 4, 6)), data_format="channels_first")
    with pytest.raises(ValueError, match=r"\(kernel shape \(3, 3, 4, 8\), x shape \(32, 32, 3\)\)$"):
        conv2d(np.ones((32, 32, 3)), np.ones((3, 3, 4, 8)))  # fits neither layout: no hint
