"""Plain-assert test runner for MicroPython (CPython uses pytest on the
same files). Usage, from the repository root:

    MICROPYPATH=.frozen:. micropython tests/dual/run.py tests.dual.test_interlock [...]

Runs every ``test_*`` function of the named modules and prints one line
per test, then ``N passed, N failed``.
"""

import sys

passed = 0
failed = 0
for modname in sys.argv[1:]:
    mod = __import__(modname, None, None, ["x"])
    for name in sorted(dir(mod)):
        if not name.startswith("test_"):
            continue
        fn = getattr(mod, name)
        try:
            fn()
            passed += 1
            print("PASS %s.%s" % (modname, name))
        except Exception as e:
            failed += 1
            print("FAIL %s.%s: %s: %s" % (modname, name, type(e).__name__, e))
            sys.print_exception(e)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
