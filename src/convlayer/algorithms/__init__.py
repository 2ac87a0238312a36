"""Compute kernels. They receive checked, channels-last arrays and resolved integers."""
