%% Driver of the OTP 29 crash reproducer without any Go (see README.md): runs on node B,
%% steers node A through A's standard input (a fifo), the way internal/erltest's control
%% loop does. The DOWN of a B process whose exit reason holds a binary is matched on A by
%% erl_eval against a pattern with that binary literal (LIT unset or 1), or bound and
%% compared with =:= (LIT=0).
-module(drv).
-export([main/1]).

main([A0, N0, B0, Fifo]) ->
    {ok, _} = net_kernel:start([list_to_atom(B0), shortnames]),
    erlang:set_cookie(c),
    register(drv, self()),
    _ = list_to_atom(A0),
    {ok, F} = file:open(Fifo, [write, raw]),
    put(fifo, F),
    {shell, Sh} = receive {shell, _} = M -> M after 30000 -> exit(no_shell) end,
    put(shell, Sh),
    R = [step(I) || I <- lists:seq(1, list_to_integer(N0))],
    io:format("RESULT ~p~n", [R]),
    halt().

ev(S) ->
    Line = "{drv, '" ++ atom_to_list(node()) ++ "'} ! {res, begin " ++ S ++ " end}, ok.\n",
    ok = file:write(get(fifo), Line),
    receive {res, V} -> V after 20000 -> ev_timeout end.

give(K, V) ->
    get(shell) ! {give, K, V},
    ok = ev("receive {give, " ++ atom_to_list(K) ++ ", V} -> put(" ++ atom_to_list(K) ++ ", V), ok after 20000 -> timeout end").

sync() ->
    get(shell) ! sync,
    ok = ev("receive sync -> ok after 20000 -> timeout end").

step(I) ->
    P1 = spawn(fun() -> receive go -> exit({bye, <<"now">>}) end end),
    give(g1, P1),
    ok = ev("put(r1, monitor(process, get(g1))), ok"),
    sync(),
    P1 ! go,
    true = case os:getenv("LIT") of
        "0" -> ev("R = get(r1), receive {'DOWN', R, process, _, Why} -> Why =:= {bye, <<\"now\">>} after 20000 -> timeout end");
        _ -> ev("R = get(r1), receive {'DOWN', R, process, _, {bye, <<\"now\">>}} -> true; M -> M after 20000 -> timeout end")
    end,
    Name = "named" ++ integer_to_list(I),
    P2 = spawn(fun() -> receive go -> exit(done) end end),
    register(list_to_atom(Name), P2),
    ok = ev("put(r2, monitor(process, {" ++ Name ++ ", '" ++ atom_to_list(node()) ++ "'})), ok"),
    sync(),
    P2 ! go,
    ev("R = get(r2), receive {'DOWN', R, process, _, W} -> W after 20000 -> timeout end").
