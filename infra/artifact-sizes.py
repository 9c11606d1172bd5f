"""Prints each function's deployment package size after `sam build`: the `bootstrap` SAM
built, zipped as `sam deploy` uploads it (goal: at most 10 MB each). Exits 1 above that."""

import io
import pathlib
import sys
import zipfile

LIMIT = 10 * 1000 * 1000
build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/build")
rows = []
for bootstrap in sorted(build.glob("*/bootstrap")):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(bootstrap, "bootstrap")
    rows.append((bootstrap.parent.name, bootstrap.stat().st_size, len(buffer.getvalue())))
if not rows:
    sys.exit(f"no */bootstrap under {build}: run `make sam-build` first")
print("| function | bootstrap MiB | zipped MB |\n|---|---:|---:|")
for name, size, zipped in rows:
    print(f"| {name} | {size / 1048576:.1f} | {zipped / 1e6:.2f} |")
over = [name for name, _, zipped in rows if zipped > LIMIT]
if over:
    sys.exit(f"over {LIMIT / 1e6:.0f} MB zipped: {', '.join(over)}")
