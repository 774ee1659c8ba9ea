%% Prints golden external-term vectors from a real BEAM node, one per line:
%%   Name TAB CanonicalHex [TAB AltHex ...]
%% CanonicalHex is term_to_binary(T, [{minor_version, 2}]) (UTF-8 atoms, NEW_FLOAT_EXT), which is the
%% encoding etf.Append must reproduce. Each AltHex is another encoding of the same term: BEAM's default
%% (minor_version 1, ATOM_EXT atoms), minor_version 0 (FLOAT_EXT floats) or hand-made legacy bytes.
%% Run through etf's TestVectors with -update; it names the node and sets the EPMD-less port.
-mode(compile).

main(_) ->
    {CallMsg, AliasTag} = capture_is_auth(),
    Ref = make_ref(),
    Go = <<"go@host">>,
    Canon = [
        {small_int_0, 0}, {small_int_255, 255}, {int_256, 256}, {int_neg1, -1},
        {int_max32, 2147483647}, {int_min32, -2147483648}, {big_2p31, 2147483648},
        {big_neg_2p31_1, -2147483649}, {big_max64, 9223372036854775807},
        {big_min64, -9223372036854775808}, {big_2p64_1, 18446744073709551615},
        {big_2p100, 1 bsl 100}, {big_neg_2p100, -(1 bsl 100)}, {large_big_2p2100, 1 bsl 2100},
        {float_1_5, 1.5}, {float_neg_0_1, -0.1}, {float_0, 0.0}, {float_1e300, 1.0e300},
        {atom_empty, ''}, {atom_ok, ok}, {atom_true, true}, {atom_false, false},
        {atom_latin1, list_to_atom([$h, 16#E9, $l, $l, $o])}, {atom_utf8, list_to_atom([16#65E5, 16#672C])},
        {atom_255, list_to_atom(lists:duplicate(255, $a))},
        {atom_255_utf8, list_to_atom(lists:duplicate(255, 16#65E5))},
        {pid_self, self()}, {port_real, hd(erlang:ports())}, {ref_real, Ref},
        {tuple_empty, {}}, {tuple_pair, {ok, 1}}, {tuple_300, list_to_tuple(lists:seq(1, 300))},
        {nil, []}, {list_mixed, [1, a, 1000]}, {string_hello, "hello"}, {improper, [1 | 2]},
        {alias_tag, AliasTag},
        {binary_empty, <<>>}, {binary_123, <<1, 2, 3>>}, {bits_3, <<1:3>>}, {bits_13, <<255, 3:5>>},
        {map_empty, #{}}, {map_two, #{a => 1, <<"b">> => [2]}}, {export_abs, fun erlang:abs/1},
        {fun_local, fun(X) -> {X, Ref} end},
        {nested, {[#{k => {1, [<<>>]}}], "x", [[]]}},
        {is_auth_ctrl, {6, self(), '', net_kernel}},
        {is_auth_call, CallMsg},
        {is_auth_reply_ctrl, {2, '', self()}},
        {is_auth_reply, {Ref, yes}},
        {alias_reply_ctrl, {33, self(), AliasTag}},
        {alias_reply, {AliasTag, yes}}
    ],
    Legacy = [
        {legacy_pid_ext, <<131, 103, 100, 7:16, Go/binary, 42:32, 1:32, 3>>},
        {legacy_port_ext, <<131, 102, 100, 7:16, Go/binary, 7:32, 2>>},
        {legacy_v4_port_small, <<131, 120, 119, 7, Go/binary, 7:64, 5:32>>},
        {legacy_v4_port_big, <<131, 120, 119, 7, Go/binary, (1 bsl 40 + 3):64, 5:32>>},
        {legacy_reference_ext, <<131, 101, 100, 7:16, Go/binary, 9:32, 1>>},
        {legacy_new_reference_ext, <<131, 114, 3:16, 115, 7, Go/binary, 2, 1:32, 2:32, 3:32>>},
        {legacy_newer_ref_len5, <<131, 90, 5:16, 119, 7, Go/binary, 77:32, 1:32, 2:32, 3:32, 4:32, 5:32>>},
        {legacy_newer_ref_len1, <<131, 90, 1:16, 119, 7, Go/binary, 77:32, 1:32>>},
        {legacy_small_atom_ext, <<131, 115, 3, "abc">>},
        {legacy_atom_ext_latin1, <<131, 100, 2:16, 233, 255>>},
        {legacy_atom_utf8_long_form, <<131, 118, 2:16, "ok">>},
        {legacy_big_padded, <<131, 110, 4, 0, 5, 0, 0, 0>>},
        {legacy_big_neg_zero, <<131, 110, 1, 1, 0>>},
        {legacy_large_big_small, <<131, 111, 1:32, 1, 7>>},
        {legacy_bits_padding, <<131, 77, 1:32, 3, 2#10111111>>},
        {legacy_bits_whole, <<131, 77, 2:32, 8, 1, 2>>},
        {legacy_bits_empty, <<131, 77, 0:32, 0>>},
        {legacy_string_empty, <<131, 107, 0:16>>}
    ],
    lists:foreach(fun({Name, T}) -> emit(Name, T, []) end, Canon),
    lists:foreach(fun({Name, B}) -> emit(Name, binary_to_term(B), [B]) end, Legacy).

emit(Name, T, Extra) ->
    C = term_to_binary(T, [{minor_version, 2}]),
    Alts = lists:usort([term_to_binary(T), term_to_binary(T, [{minor_version, 0}]) | Extra]) -- [C],
    io:format("~s~s~n", [Name, [[$\t, binary:encode_hex(B)] || B <- [C | Alts]]]).

%% capture_is_auth makes the exact message net_adm:ping sends to net_kernel: gen:call with
%% {is_auth, node()}, received by a stand-in server. It returns the message and its [alias|Ref] tag.
capture_is_auth() ->
    Parent = self(),
    Srv = spawn(fun() ->
        receive {'$gen_call', From, _} = M -> Parent ! {captured, M}, gen:reply(From, yes) end
    end),
    {ok, yes} = gen:call(Srv, '$gen_call', {is_auth, node()}, 5000),
    receive {captured, {_, {_, Tag}, _} = Msg} -> {Msg, Tag} end.
