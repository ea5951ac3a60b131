"""The test tree is a package so that pytest puts the repository root, not tests/, on sys.path:
otherwise tests/fractal would shadow the real `fractal` package."""
