"""What the tests and benchmarks share: servers, sample worlds, clients of the fake marketplace and helpers.

Test modules and conftests are never imported as libraries; anything two of them need lives here (fixtures
used by several test packages live in ``tests/conftest.py``). ``tests/test_layout.py`` holds to that.
"""
