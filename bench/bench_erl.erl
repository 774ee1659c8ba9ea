%% Driver for `go run ./bench`: the Go harness starts this module on an erl
%% node, writes one command per line as an Erlang term on standard input, and
%% reads one "BENCH-RESULT Term" or "BENCH-ERROR Reason" line per command on
%% standard output. Every figure is measured here, inside the VM, with
%% erlang:monotonic_time(nanosecond), so no pipe or Go code is on the clock.
-module(bench_erl).
-export([main/0, echo/1]).
-behaviour(gen_server).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

main() ->
    io:format("BENCH-DRIVER ~s~n", [node()]),
    loop().

loop() ->
    case io:read('') of
        {ok, halt} ->
            erlang:halt(0);
        {ok, Cmd} ->
            try run(Cmd) of
                R -> io:format("BENCH-RESULT ~w~n", [R])
            catch
                C:E:S -> io:format("BENCH-ERROR ~w~n", [{C, E, S}])
            end,
            loop();
        eof ->
            erlang:halt(0);
        {error, E} ->
            io:format("BENCH-ERROR ~w~n", [{bad_command, E}]),
            loop()
    end.

ns() -> erlang:monotonic_time(nanosecond).

%% {connect, Node, Warm, N, GapMs}: from no connection to the first pong,
%% N times (after Warm uncounted rounds): net_kernel:connect_node (EPMD
%% lookup + handshake) then net_adm:ping. Each round ends with
%% disconnect_node and GapMs of rest, off the clock.
run({connect, T, Warm, N, Gap}) ->
    _ = [connect_once(T, Gap) || _ <- lists:seq(1, Warm)],
    [connect_once(T, Gap) || _ <- lists:seq(1, N)];
%% {ping, Node, Warm, N}: net_adm:ping round trips on an established link.
run({ping, T, Warm, N}) ->
    pong = net_adm:ping(T),
    _ = [pong = net_adm:ping(T) || _ <- lists:seq(1, Warm)],
    [ping_once(T) || _ <- lists:seq(1, N)];
%% {seqhealth, Nodes, Warm, N}: the seed's health loop,
%% [net_adm:ping(N) || N <- nodes()], with nodes() being exactly Nodes.
run({seqhealth, Nodes, Warm, N}) ->
    _ = [erlang:disconnect_node(X) || X <- nodes(), not lists:member(X, Nodes)],
    _ = [true = net_kernel:connect_node(X) || X <- Nodes],
    Want = lists:sort(Nodes),
    Want = lists:sort(nodes()),
    _ = [seq_once(length(Nodes)) || _ <- lists:seq(1, Warm)],
    [seq_once(length(Nodes)) || _ <- lists:seq(1, N)];
run({disconnect, T}) ->
    erlang:disconnect_node(T);
%% {serve, Node, Src}: load this module on Node (the BEAM target) from the
%% source at Src, and start there the registered message sink bench_sink
%% and the gen_server bench_echo (what the messaging and call rows use).
run({serve, T, Src}) ->
    {ok, M, B} = compile:file(Src, [binary, report_errors]),
    {module, M} = rpc:call(T, code, load_binary, [M, Src, B]),
    _ = rpc:call(T, erlang, spawn, [fun() -> start_servers() end]),
    ok = wait_registered(T, 1000),
    [1];
%% {send, {Name, Node}, K, M}: K processes each send M messages to the
%% registered process Name on Node, as fast as `!` goes; then a sync
%% call, made after every sender is done, is answered once the sink has
%% seen them all (one link keeps them in order). Returns [Messages, Nanoseconds].
run({send, Target, K, M}) ->
    Msg = {msg, 12345, <<"0123456789abcdef">>},
    T0 = ns(),
    Pids = [spawn_monitor(fun() -> send_n(Target, Msg, M) end) || _ <- lists:seq(1, K)],
    _ = [receive {'DOWN', Ref, process, Pid, normal} -> ok end || {Pid, Ref} <- Pids],
    {synced, C} = gen_server:call(Target, sync, 120000),
    [C, ns() - T0];
%% {calls, {Name, Node}, K, WarmMs, Ms}: K processes make gen_server:call(Target, Req)
%% one after another for WarmMs then Ms milliseconds; returns [CallsInMs, Nanoseconds].
run({calls, Target, K, Warm, Ms}) ->
    Counter = counters:new(1, [write_concurrency]),
    Stop = atomics:new(1, []),
    Pids = [spawn_monitor(fun() -> call_loop(Target, Counter, Stop) end) || _ <- lists:seq(1, K)],
    timer:sleep(Warm),
    C0 = counters:get(Counter, 1), T0 = ns(),
    timer:sleep(Ms),
    C1 = counters:get(Counter, 1), T1 = ns(),
    atomics:put(Stop, 1, 1),
    _ = [receive {'DOWN', Ref, process, Pid, R} -> normal = R end || {Pid, Ref} <- Pids],
    [C1 - C0, T1 - T0];
%% {erpc, Node, K, WarmMs, Ms}: the same with erpc:call(Node, bench_erl, echo, [Req]).
run({erpc, Node, K, Warm, Ms}) ->
    Counter = counters:new(1, [write_concurrency]),
    Stop = atomics:new(1, []),
    Pids = [spawn_monitor(fun() -> erpc_loop(Node, Counter, Stop) end) || _ <- lists:seq(1, K)],
    timer:sleep(Warm),
    C0 = counters:get(Counter, 1), T0 = ns(),
    timer:sleep(Ms),
    C1 = counters:get(Counter, 1), T1 = ns(),
    atomics:put(Stop, 1, 1),
    _ = [receive {'DOWN', Ref, process, Pid, R} -> normal = R end || {Pid, Ref} <- Pids],
    [C1 - C0, T1 - T0];
%% {procmem, N}: bytes of process memory (erlang:memory(processes)) per
%% idle process (each waiting in receive), over N spawned processes.
run({procmem, N}) ->
    garbage_collect(),
    M0 = erlang:memory(processes),
    Ps = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, N)],
    M1 = erlang:memory(processes),
    _ = [P ! stop || P <- Ps],
    [M1 - M0, N].

send_n(_, _, 0) -> ok;
send_n(T, Msg, N) -> T ! Msg, send_n(T, Msg, N - 1).

call_loop(T, Counter, Stop) ->
    case atomics:get(Stop, 1) of
        0 ->
            {echo, 1} = gen_server:call(T, {echo, 1}, 30000),
            counters:add(Counter, 1, 1),
            call_loop(T, Counter, Stop);
        _ -> ok
    end.

erpc_loop(Node, Counter, Stop) ->
    case atomics:get(Stop, 1) of
        0 ->
            {echo, 1} = erpc:call(Node, bench_erl, echo, [{echo, 1}], 30000),
            counters:add(Counter, 1, 1),
            erpc_loop(Node, Counter, Stop);
        _ -> ok
    end.

%% echo/1: what the erpc rows call, on B (and, registered with the same
%% name, on our node).
echo(X) -> X.

wait_registered(_, 0) -> error(servers_not_started);
wait_registered(T, K) ->
    case {rpc:call(T, erlang, whereis, [bench_sink]), rpc:call(T, erlang, whereis, [bench_echo])} of
        {P, Q} when is_pid(P), is_pid(Q) -> ok;
        _ -> timer:sleep(5), wait_registered(T, K - 1)
    end.

start_servers() ->
    register(bench_sink, spawn(fun() -> sink(0) end)),
    {ok, _} = gen_server:start({local, bench_echo}, ?MODULE, [], []),
    ok.

%% The message sink: counts messages; the call `sync` is answered
%% {synced, Count} and counting starts again.
sink(C) ->
    receive
        {'$gen_call', From, sync} -> gen:reply(From, {synced, C}), sink(0);
        _ -> sink(C + 1)
    end.

%% bench_echo: a gen_server that answers every call with the request.
init([]) -> {ok, nostate}.
handle_call(Req, _From, S) -> {reply, Req, S}.
handle_cast(_, S) -> {noreply, S}.
handle_info(_, S) -> {noreply, S}.

connect_once(T, Gap) ->
    T0 = ns(),
    true = net_kernel:connect_node(T),
    pong = net_adm:ping(T),
    D = ns() - T0,
    erlang:disconnect_node(T),
    ok = wait_gone(T, 1000),
    timer:sleep(Gap),
    D.

wait_gone(T, 0) -> {still_connected, T};
wait_gone(T, K) ->
    case lists:member(T, nodes(connected)) of
        true -> timer:sleep(1), wait_gone(T, K - 1);
        false -> ok
    end.

ping_once(T) ->
    T0 = ns(),
    pong = net_adm:ping(T),
    ns() - T0.

seq_once(Len) ->
    T0 = ns(),
    Res = [net_adm:ping(X) || X <- nodes()],
    D = ns() - T0,
    Len = length([pong || pong <- Res]),
    D.
