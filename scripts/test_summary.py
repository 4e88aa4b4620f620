"""Prints one closing line counting the test cases of every meson test log given:
'N passed, N failed' (doctest cases and pytest tests, each build counted; a test that
reports no count, such as a fuzz corpus replay or a bounded fuzz run, counts as one)."""
import json
import re
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
  try:
    lines = open(path).read().splitlines()
  except OSError:
    failed += 1
    print("missing test log: %s" % path)
    continue
  for line in lines:
    entry = json.loads(line)
    out = entry.get("stdout", "") or ""
    # A fuzzer's log may hold anything ("3 passed" in a printed input): its result is the count.
    # meson names a test "project:suite / name" (and newer versions also list its suites).
    suites = entry.get("suite") or [entry.get("name", "").split(" / ")[0]]
    if any(s.split(":")[-1] in ("fuzz", "fuzz-run") for s in suites):
      out = ""
    m = re.search(r"test cases:\s*(\d+) \|\s*(\d+) passed \|\s*(\d+) failed \|\s*(\d+) skipped", out)
    if m:
      passed += int(m.group(2))
      failed += int(m.group(3))
      skipped += int(m.group(4))
      continue
    counts = dict((k, int(v)) for v, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", out))
    if counts:
      passed += counts.get("passed", 0)
      failed += counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)
      skipped += counts.get("skipped", 0)
      # A test that failed (crashed, timed out) counts as a failure whatever it printed.
      if entry.get("result") not in ("OK", "SKIP", "EXPECTEDFAIL") and not (
          counts.get("failed") or counts.get("error") or counts.get("errors")):
        failed += 1
    elif entry.get("result") == "OK":
      passed += 1
    else:
      failed += 1
line = "%d passed, %d failed" % (passed, failed)
if skipped:
  line += ", %d skipped" % skipped
print(line)
sys.exit(1 if failed else 0)
