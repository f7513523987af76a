"""rust-lld with kwait's hot functions first in .text.

Why: a supervising kwait's memory is mostly pages of its own binary, and the
kernel maps a file's pages in 64 KiB windows (fault-around). Left to the
linker, the few hundred functions a supervisor runs are spread over most of
the 1.3 MB of code and keep nearly all of it resident; placed together they
fit in a few windows (scripts/bench measures the peak). Starting up and
probing touch fewer pages too.

How: link/hot.txt (written by scripts/order from what the common paths
executed under callgrind) lists functions by v0-mangled name with the parts
that change from build to build taken out: crate disambiguators (`Cs…_`,
which depend on features, target and toolchain) and back-reference offsets
(`B…_`, which move with them), and LLVM's `.N` numbering of local
copies. At link time the input objects' symbols are
reduced the same way, and the matching real names are handed to rust-lld as
its --symbol-ordering-file, in hot.txt's order. hot.txt names every alias
of a function that identical code folding (ICF) merged in the profiled
build, since which copy ICF keeps depends on the build and the ordering
applies to the copy kept. A name that no longer exists
matches nothing, and a new function lands after the hot ones: a stale list
costs memory, never correctness; if anything here fails, kwait is linked as
rust-lld would link it.

Usage (link/rust-lld): order.py HOT_TXT LINKER_ARGS...
"""
import os
import re
import struct
import subprocess
import sys
import tempfile

_CRATE = re.compile(r"Cs[0-9A-Za-z]*_")
_BACKREF = re.compile(r"B[0-9A-Za-z]*_")
_LOCAL = re.compile(r"\.\d+$")


def normalize(name):
    """A symbol name with what varies between builds taken out."""
    name = _LOCAL.sub("", name)  # LLVM's numbering of local copies
    if name.startswith("_R"):
        return _BACKREF.sub("B_", _CRATE.sub("Cs_", name))
    return name


def functions(path):
    """The function symbols an ELF64 little-endian file defines, as (name,
    value) pairs (both x86_64 and aarch64 objects are such files)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = []
    for _, kind, _, _, off, size, link, _, _, entsize in headers:
        if kind != 2 or entsize != 24:  # SHT_SYMTAB
            continue
        stroff = headers[link][4]
        for at in range(off, off + size, 24):
            st_name, st_info, _, st_shndx, st_value = struct.unpack_from("<IBBHQ", data, at)
            if st_info & 0xF != 2 or st_shndx == 0:  # STT_FUNC, defined
                continue
            end = data.index(b"\0", stroff + st_name)
            names.append((data[stroff + st_name:end].decode("utf-8", "replace"), st_value))
    return names


def inputs(args):
    """The object files among the linker's arguments (and its @response
    files): Rust's LTO object holds every Rust function."""
    for arg in args:
        if arg.startswith("@"):
            with open(arg[1:]) as f:
                yield from inputs([line.strip().strip('"') for line in f if line.strip()])
        elif arg.endswith(".o") and os.path.isfile(arg):
            yield arg


def ordering(hot_txt, args):
    """The real names, in hot.txt's order, of the input's hot functions."""
    by_key = {}
    for path in inputs(args):
        for name, _ in functions(path):
            by_key.setdefault(normalize(name), []).append(name)
    order = []
    with open(hot_txt) as f:
        for line in f:
            key = line.strip()
            if key and not key.startswith("#"):
                # A C function (musl's) is named as it is; it lives in an archive.
                order.extend(by_key.get(key, [key] if not key.startswith("_R") else []))
    return order


def main():
    hot_txt, args = sys.argv[1], sys.argv[2:]
    extra = []
    order_file = None
    try:
        order = ordering(hot_txt, args)
        fd, order_file = tempfile.mkstemp(prefix="kwait-order.", suffix=".txt")
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(order) + "\n")
        extra = [f"--symbol-ordering-file={order_file}", "--no-warn-symbol-ordering"]
    except Exception as err:  # never fail a link over its ordering
        print(f"link/order.py: linking without the hot-function order ({err})", file=sys.stderr)
    try:
        # rustc calls rust-lld as `rust-lld -flavor gnu ...`: the flavor stays first.
        sys.exit(subprocess.call(["rust-lld"] + args + extra))
    finally:
        if order_file:
            os.unlink(order_file)


if __name__ == "__main__":
    main()
