#!/usr/bin/env escript
%% Erlang's own term_to_binary/binary_to_term for the gateway ETF vectors (see scripts/gen-gateway-vectors).
%% encode TERMS OUT: TERMS holds {Name, Term, Options} tuples; writes "Name HEX" lines to OUT.
%% check PAIRS: lines "OURS_HEX REFERENCE_HEX"; each ours must decode (safely) to the reference's term.
main(["encode", In, Out]) ->
    {ok, Terms} = file:consult(In),
    Lines = [[atom_to_list(Name), " ", binary:encode_hex(term_to_binary(Term, Options)), "\n"]
             || {Name, Term, Options} <- Terms],
    ok = file:write_file(Out, Lines),
    io:format("~s~n", [erlang:system_info(otp_release)]);
main(["check", In]) ->
    {ok, Data} = file:read_file(In),
    Lines = [L || L <- binary:split(Data, <<"\n">>, [global]), L =/= <<>>],
    Failed = [L || L <- Lines, not same_term(L)],
    [io:format(standard_error, "binary_to_term disagrees: ~s~n", [L]) || L <- Failed],
    io:format("checked ~b terms: ~b failures~n", [length(Lines), length(Failed)]),
    halt(case Failed of [] -> 0; _ -> 1 end);
main(_) ->
    io:format(standard_error, "usage: gateway_vectors.escript encode TERMS OUT | check PAIRS~n", []),
    halt(2).

same_term(Line) ->
    [Ours, Reference] = binary:split(Line, <<" ">>),
    try
        binary_to_term(binary:decode_hex(Ours), [safe]) =:= binary_to_term(binary:decode_hex(Reference))
    catch
        _:_ -> false
    end.
