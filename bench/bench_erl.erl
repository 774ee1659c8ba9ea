%% Driver for `go run ./bench`: the Go harness starts this module on an erl
%% node, writes one command per line as an Erlang term on standard input, and
%% reads one "BENCH-RESULT Term" or "BENCH-ERROR Reason" line per command on
%% standard output. Every figure is measured here, inside the VM, with
%% erlang:monotonic_time(nanosecond), so no pipe or Go code is on the clock.
-module(bench_erl).
-export([main/0]).

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
    erlang:disconnect_node(T).

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
