"""The channel-block driver (symnet.solvers.channel_driver): its sweeps, stages and ridge choice run through
the coordinate solver and are tested with the block steps in test_channel_blocks.py."""


def test_docstring_examples_run():
    import doctest

    import symnet.solvers.channel_driver as module

    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
