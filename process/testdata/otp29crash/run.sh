#!/bin/bash
# OTP 29 crash reproducer with two OTP 29 nodes and no Go (see README.md).
# usage: run.sh EPMD_PORT ROUNDS   (env LIT=0: no binary literal in the pattern)
# Prints "A SEGFAULT" when node A (beam.smp) died of SIGSEGV, else B's result line.
set -u
P=$1; N=$2
S=${SID:-$HOME/.cache/distribute/otp/sid}
D=$(cd "$(dirname "$0")" && pwd)
W=/tmp/otp29crash.$P; mkdir -p "$S$W"; cp "$D/drv.erl" "$S$W/"
chroot "$S" sh -c "cd $W && erlc drv.erl" || exit 1
chroot "$S" env ERL_EPMD_PORT=$P epmd -port $P -address 127.0.0.1 -daemon
FIFO=$W/fifo; rm -f "$S$FIFO"; mkfifo "$S$FIFO"
(chroot "$S" env ERL_EPMD_PORT=$P HOME=/root LIT=${LIT:-1} sh -c \
    "cd $W; erl -noshell -run drv main a$P@localhost $N b$P@localhost $FIFO" > "$S$W/b.log" 2>&1) &
BP=$!
sleep 1.5
# erltest's control loop (internal/erltest controlLoop), reading the fifo.
CL='(fun Loop(N) -> case io:get_line("") of eof -> erlang:halt(0); {error, _} -> erlang:halt(0); Line -> R = try {ok, Toks, _} = erl_scan:string(Line), {ok, Exprs} = erl_parse:parse_exprs(Toks), {value, V, _} = erl_eval:exprs(Exprs, []), {ok, V} catch C:E -> {error, {C, E}} end, case R of {ok, Val} -> io:format("R~b ok ~0tp~n", [N, Val]); {error, {Cl, Er}} -> io:format("R~b error ~0tp:~0tp~n", [N, Cl, Er]) end, Loop(N + 1) end end)(1)'
chroot "$S" env ERL_EPMD_PORT=$P HOME=/root sh -c "exec erl -sname a$P@localhost -setcookie c -noshell \
    -eval \"{drv, 'b$P@localhost'} ! {shell, self()}\" -eval '$CL' < $FIFO" > "$S$W/a.log" 2>&1 &
AP=$!
wait $AP; RC=$?
wait $BP
if [ $RC -eq 139 ]; then echo "A SEGFAULT"; else grep -a RESULT "$S$W/b.log" | cut -c1-60; fi
chroot "$S" env ERL_EPMD_PORT=$P epmd -port $P -kill > /dev/null 2>&1
