# SPDX-License-Identifier: Apache-2.0
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for d in (HERE, ROOT, os.path.join(ROOT, "chain"), os.path.join(ROOT, "health"),
          os.path.join(ROOT, "proxy"), os.path.join(ROOT, "tools")):
    sys.path.insert(0, d)
