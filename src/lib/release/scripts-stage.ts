/**
 * Staging scripts (see remote.ts for why these are constant sh texts with positional args).
 * A release is built under releases/.tmp-<name>-<nonce>, verified against its manifest on the
 * node, fsynced, and only then renamed to releases/<name>: a node never sees half a release.
 */

/** Args: root, name, nonce, source release ("" for none). Stdin: paths to copy from the source. */
export const PREPARE_SCRIPT = `
set -e
cd "$1"
mkdir -p releases log run cache tmp .edgectl
for d in releases/.tmp-*; do [ -e "$d" ] && rm -rf "$d"; done
if [ -d "releases/$2" ] && [ ! -f "releases/$2/manifest.json" ] && [ "$(readlink current)" != "releases/$2" ]; then rm -rf "releases/$2"; fi
s="releases/.tmp-$2-$3"
# 0700 until FINISH_SCRIPT has set every mode: a secret is never readable by others on the way.
mkdir -m 700 "$s"
if [ -n "$4" ]; then
  cd "releases/$4"
  xargs -r -d '\\n' cp --parents -p -t "../.tmp-$2-$3" --
fi
`;

/**
 * Args: root, name, nonce, the secret paths (mode 0600) as one newline-separated word, then the
 * paths that are executable. Stdin: sha256sum checklist. Exit 4: mismatches on stdout.
 */
export const FINISH_SCRIPT = `
set -e
cd "$1/releases/.tmp-$2-$3"
name="$2"; tmp=".tmp-$2-$3"; private="$4"
shift 4
find . -mindepth 1 \\( -type d -exec chmod 755 {} + \\) -o \\( -type f -exec chmod 644 {} + \\)
[ $# -gt 0 ] && chmod 755 -- "$@"
[ -z "$private" ] || printf '%s\\n' "$private" | xargs -r -d '\\n' chmod 600 --
chmod 755 .
if ! out=$(sha256sum --strict -c - 2>/dev/null); then printf '%s\\n' "$out" | grep -v ': OK$' || true; exit 4; fi
# Every file and directory, one sync process (each process costs the node a fork and an exec).
find . -exec sync -- {} +
cd ..
mv -T "$tmp" "$name"
sync -- .
`;

/**
 * Lists how a release directory differs from its manifest. Args: release dir. Stdin: checklist.
 * Stdout: sha256sum's non-OK lines, then "--files--" and `%y %m %P` of everything in it.
 */
export const VERIFY_SCRIPT = `
cd "$1" || exit 5
sha256sum --strict -c - 2>/dev/null | grep -v ': OK$'
echo "--files--"
find . -mindepth 1 -printf '%y %m %P\\n'
exit 0
`;

/**
 * Repairs files of an existing release in place: each <path>.edgectl-new (already uploaded)
 * is fsynced and renamed over <path>; extra files are removed. Args: dir, then "+path" to
 * install, "-path" to remove.
 */
export const REPAIR_SCRIPT = `
set -e
cd "$1"
shift
for a in "$@"; do
  p="\${a#?}"
  case "$a" in
    +*) sync -- "./$p.edgectl-new"; mv -f -T -- "./$p.edgectl-new" "./$p";;
    -*) rm -rf -- "./$p";;
  esac
done
sync -- .
`;
