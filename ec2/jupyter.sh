#!/usr/bin/env bash
# Start JupyterLab on the instance, reachable only through an SSH tunnel.
#
# Usage (on the instance, after ec2/setup.sh; inside tmux so it survives a lost SSH session):
#   bash ec2/jupyter.sh
#   DRY_RUN=1 bash ec2/jupyter.sh     (print what it would start)
#
# JupyterLab listens on 127.0.0.1 only, never 0.0.0.0, and asks for a token: nothing but
# port 22 needs to be open in the instance's security group. The script prints the
# `ssh -L` command to run on your own computer and the URL to open there.
#
# Settings (environment variables):
#   JUPYTER_PORT   port on the instance and on your computer (default: 8888)
#   JUPYTER_TOKEN  the login token (default: a fresh random one each start)
#   VENV           the course's virtual environment (default: .venv at the repository root)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

readonly BIND_ADDRESS=127.0.0.1   # the one address JupyterLab may listen on
VENV=${VENV:-$REPO_ROOT/.venv}
[[ $VENV == /* ]] || VENV=$PWD/$VENV
PORT=${JUPYTER_PORT:-8888}

if (($# > 0)); then
    die "jupyter.sh takes no arguments (got: $*)." \
        "It always binds to $BIND_ADDRESS; set JUPYTER_PORT or JUPYTER_TOKEN to change the port or token."
fi
if ! [[ $PORT =~ ^[0-9]+$ ]] || ((PORT < 1024 || PORT > 65535)); then
    die "JUPYTER_PORT must be a number from 1024 to 65535 (got '$PORT')."
fi
if [[ ! -x $VENV/bin/jupyter ]]; then
    die "No JupyterLab in $VENV: run bash ec2/setup.sh first."
fi

if [[ -z ${JUPYTER_TOKEN:-} ]]; then
    JUPYTER_TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
fi
export JUPYTER_TOKEN   # read by Jupyter Server; kept out of the command line (and of `ps`)

announce_dry_run
cat <<EOF

JupyterLab will listen on $BIND_ADDRESS:$PORT on this instance, with a token.

1. On your own computer, open the tunnel (leave it running):

     ssh -N -L $PORT:$BIND_ADDRESS:$PORT -i ~/.ssh/YOUR-KEY.pem $(id -un)@INSTANCE-PUBLIC-DNS

   (YOUR-KEY.pem: the key pair you launched with; INSTANCE-PUBLIC-DNS: shown in the EC2 console.)

2. Then open, on your computer:

     http://$BIND_ADDRESS:$PORT/lab?token=$JUPYTER_TOKEN

   Choose the kernel "Python (llms-from-dummies)". Stop JupyterLab with Ctrl-C here.
   Stop the instance when you are done: it costs money every hour it runs (ec2/README.md).

EOF

run "$VENV/bin/jupyter" lab --no-browser \
    "--ServerApp.ip=$BIND_ADDRESS" "--ServerApp.port=$PORT" --ServerApp.port_retries=0 \
    "--ServerApp.root_dir=$REPO_ROOT"
