"""moto's S3 server on 127.0.0.1, on a free port, for forgekeep's tests.

Prints "PORT <n>" once it answers, then serves until its parent (the test binary) is
gone: a test binary's statics are never dropped, so the server cannot be stopped from
there, and it must not outlive the run.
"""
import os
import sys
import time

from moto.server import ThreadedMotoServer

parent = os.getppid()
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print("PORT", server.get_host_and_port()[1], flush=True)
while os.getppid() == parent:
    time.sleep(0.5)
os._exit(0)
