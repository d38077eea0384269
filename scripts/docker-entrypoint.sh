#!/bin/sh
# The container's start: check that the studio can write its folders in /data, then run CMD.
# /data is a Docker volume (owned by the image's user) or a bind-mounted host folder, which
# belongs to whoever owns it on the host and is often not writable by uid 1000.
set -eu

data="${DATA_DIR:-/data}"

writable() {
    mkdir -p "$1" 2>/dev/null || return 1
    probe="$1/.write-test.$$"
    (: > "$probe") 2>/dev/null || return 1
    rm -f "$probe"
}

for dir in "$data" "${HF_HOME:-}" "${XDG_CACHE_HOME:-}" "${GRADIO_TEMP_DIR:-}" \
           "${STUDIO_OUTPUTS_DIR:-}" "${STUDIO_USER_PRESETS_DIR:-}"; do
    if [ -n "$dir" ] && ! writable "$dir"; then
        echo "error: $dir is not writable by the container's user (uid $(id -u)); run the container with --user \"\$(id -u):\$(id -g)\" or give that uid write access to the folder mounted at $data." >&2
        exit 1
    fi
done

# A --user that has no account in the image gets HOME=/, which it cannot write to.
if [ ! -w "${HOME:-/}" ]; then
    export HOME="$data/home"
    mkdir -p "$HOME"
fi

exec "$@"
