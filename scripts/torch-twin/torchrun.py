#!/usr/bin/env python3
"""torchrun, runnable where Debian's torch 1.13 meets Python 3.11: there `torchrun` dies before starting
a worker (AttributeError: 'NoneType' object has no attribute 'get' in elastic/multiprocessing/api.py),
because Python 3.11's enum no longer lists IntFlag's zero member when iterated, so Std.from_str('0'),
the default of --redirects and --tee, finds no member and returns None. This maps the value straight
to its member and runs torch.distributed.run unchanged, with the same arguments as torchrun.
On a torch that does not have the bug the patch changes nothing.
"""
import re
import sys

from torch.distributed.elastic.multiprocessing import api


def _from_str(vm):
    if re.fullmatch(r"[0-3]", vm):
        return api.Std(int(vm))
    if re.fullmatch(r"([0-9]+:[0-3],)*[0-9]+:[0-3]", vm):
        return {int(i): api.Std(int(v)) for i, v in (m.split(":") for m in vm.split(","))}
    raise ValueError(f"{vm} does not match <0-3> or <local rank>:<0-3>,...")


api.Std.from_str = staticmethod(_from_str)

from torch.distributed.run import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
