"""Add two numbers."""


def handler(a: float, b: float) -> float:
    """Add two numbers and return their sum.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b
