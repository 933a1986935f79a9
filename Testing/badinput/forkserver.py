"""Runs ``medseg`` command lines, each in its own forked child process, for the bad-input matrix.

Started as ``python forkserver.py`` (a clean interpreter, not pytest): it imports the CLI and what
its subcommands import once, then for each JSON request on stdin ({"argv", "cwd", "stdout",
"stderr", "timeout"}) forks a child that runs ``MedSegCore.cli.main(argv)`` exactly as the
``medseg`` console script does, with its output in the two files, and answers {"rc": exit status}
(negative: killed by that signal, e.g. -6 for a C++ abort).  A crash takes only the child.
"""
import json
import os
import signal
import sys


def _preload():
    import MedSegCore.cli as cli

    cli.build_parser()                      # imports every subcommand module
    for name in ("torch", "monai", "SimpleITK", "slicer", "vtk", "MedSegCore.dnn.loading", "MedSegCore.dnn.inference",
                 "MedSegCore.dnn.batch", "MedSegCore.mrml.label_files", "PIL.Image"):
        try:
            __import__(name)
        except ImportError:
            pass
    try:                                    # the headless scene every run builds on first use
        from MedSegCore.mrml.scene import ensure_scene
        ensure_scene()
    except ImportError:
        pass
    return cli


def _child(request, cli):
    os.chdir(request.get("cwd") or os.getcwd())
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.alarm(int(request.get("timeout", 300)))
    sys.argv = ["medseg"] + request["argv"]
    try:
        rc = cli.main(request["argv"])
    except SystemExit as exc:               # argparse errors exit 2 as in the console script
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:                   # an uncaught exception prints its traceback, exit 1
        import traceback
        traceback.print_exc()
        rc = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(rc or 0))


def main():
    cli = _preload()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request, cli)
        _, status = os.waitpid(pid, 0)
        rc = os.waitstatus_to_exitcode(status)
        print(json.dumps({"rc": rc}), flush=True)


if __name__ == "__main__":
    main()
