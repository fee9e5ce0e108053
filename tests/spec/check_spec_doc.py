"""check_spec_doc.py SSLD DOC - docs/spec.md is what `ssld schema --markdown` prints now.

The key reference is generated from the key table and the method catalogue; a change to either
without regenerating the page fails here, naming the command that regenerates it.
"""
import difflib
import subprocess
import sys

exe, doc = sys.argv[1], sys.argv[2]
now = subprocess.run([exe, "schema", "--markdown"], capture_output=True, text=True, check=True).stdout
with open(doc) as f:
    committed = f.read()
if now != committed:
    diff = list(difflib.unified_diff(committed.splitlines(), now.splitlines(), "docs/spec.md (committed)",
                                     "ssld schema --markdown", lineterm="", n=1))
    print("\n".join(diff[:60]))
    print("FAIL: docs/spec.md is stale; regenerate it with:\n  build/daemon/ssld schema --markdown > docs/spec.md")
    sys.exit(1)
print("PASS: docs/spec.md is current")
