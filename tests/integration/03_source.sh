#!/bin/bash
# The source tree itself: formatted as .clang-format says, and written in one C dialect (see
# README "Hacking"): pointers tested with !p / if (p), system headers before the project's.
# shellcheck source-path=SCRIPTDIR/../lib
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
cd "$MS_ROOT" || exit 1

sources() { git ls-files '*.c' '*.h' 2>/dev/null || find shared registry scaler tests -name '*.[ch]'; }

if command -v clang-format >/dev/null; then
	unformatted=$(sources | while read -r f; do
		clang-format --dry-run "$f" 2>&1 | grep -q warning && echo "$f"
	done)
	check "clang-format leaves every source file unchanged" [ -z "$unformatted" ]
	[ -z "$unformatted" ] || echo "# not formatted: $unformatted"
else
	echo "# skip: clang-format is not installed; formatting not checked"
fi

# "== NULL" in a condition; "!= NULL" stays where a pointer's nullness is a value (p != NULL
# returned or stored as an int).
null_tests=$(sources | xargs grep -nE '== NULL|NULL ==|(if|while) \(.*!= NULL\)' || true)
check "pointers are tested as !p and p, not against NULL" [ -z "$null_tests" ]
[ -z "$null_tests" ] || echo "# $null_tests" | head -5

late_system=$(sources | while read -r f; do
	awk -v f="$f" '/^#include "/ { q = 1 } /^#include </ { if (q) { print f; exit } }' "$f"
done)
check "system headers come before the project's" [ -z "$late_system" ]
[ -z "$late_system" ] || echo "# $late_system"

# No two files of a directory call each other in a circle (tests/lib/callgraph.py, from the
# objects of the build under test: nm's undefined symbols resolved to the file defining them).
for dir in registry shared scaler; do
	if [ -d "$MS_BUILD/$dir" ]; then
		cycles=$(python3 tests/lib/callgraph.py "$MS_BUILD/$dir")
		check "no call cycle between files of $dir/" [ -z "$cycles" ]
		[ -z "$cycles" ] || echo "$cycles" | sed 's/^/# /'
	else
		echo "# skip: $MS_BUILD/$dir not built; call cycles of $dir/ not checked"
	fi
done
