%% Decodes hex-encoded external terms (one per line of the file given as argument) with binary_to_term
%% and prints, per line, either
%%   ok SHOW HEX   (SHOW: the term in a plain form printed with ~w; HEX: term_to_binary(T, [{minor_version, 2}]))
%% or
%%   error REASON
%% SHOW turns every term into tuples, lists, integers and binaries only, so that etf's tests can render
%% the expected text without Erlang's atom quoting or float printing rules.
-mode(compile).

main([File]) ->
    {ok, Data} = file:read_file(File),
    Lines = [L || L <- binary:split(Data, <<"\n">>, [global]), L =/= <<>>],
    lists:foreach(fun check/1, Lines).

check(Hex) ->
    try binary_to_term(binary:decode_hex(Hex)) of
        T -> io:format("ok ~w ~s~n", [show(T), binary:encode_hex(term_to_binary(T, [{minor_version, 2}]))])
    catch
        C:R -> io:format("error ~w~n", [{C, R}])
    end.

show(T) when is_integer(T) -> T;
show(T) when is_float(T) -> {float, <<T:64/float>>};
show(T) when is_atom(T) -> {atom, atom_to_binary(T, utf8)};
show(T) when is_binary(T) -> {bin, T};
show(T) when is_bitstring(T) ->
    Pad = 8 - bit_size(T) rem 8,
    {bits, <<T/bitstring, 0:Pad>>, bit_size(T) rem 8};
show(T) when is_tuple(T) -> {tuple, [show(E) || E <- tuple_to_list(T)]};
show(T) when is_list(T) -> show_list(T, []);
show(T) when is_map(T) -> {map, [{show(K), show(V)} || {K, V} <- maps:to_list(T)]};
show(T) when is_pid(T) ->
    <<131, 88, 119, L, N:L/binary, I:32, S:32, C:32>> = term_to_binary(T, [{minor_version, 2}]),
    {pid, N, I, S, C};
show(T) when is_port(T) ->
    case term_to_binary(T, [{minor_version, 2}]) of
        <<131, 89, 119, L, N:L/binary, I:32, C:32>> -> {port, N, I, C};
        <<131, 120, 119, L, N:L/binary, I:64, C:32>> -> {port, N, I, C}
    end;
show(T) when is_reference(T) ->
    <<131, 90, Len:16, 119, L, N:L/binary, C:32, Ids:Len/binary-unit:32>> =
        term_to_binary(T, [{minor_version, 2}]),
    {ref, N, C, [I || <<I:32>> <= Ids]};
show(T) when is_function(T) ->
    case erlang:fun_info(T, type) of
        {type, external} ->
            {module, M} = erlang:fun_info(T, module),
            {name, F} = erlang:fun_info(T, name),
            {arity, A} = erlang:fun_info(T, arity),
            {export, atom_to_binary(M, utf8), atom_to_binary(F, utf8), A};
        {type, local} ->
            {localfun, term_to_binary(T, [{minor_version, 2}])}
    end.

show_list([], Acc) -> {list, lists:reverse(Acc)};
show_list([H | T], Acc) -> show_list(T, [show(H) | Acc]);
show_list(Tail, Acc) -> {improper, lists:reverse(Acc), show(Tail)}.
