#!/bin/sh
# The mixed-cluster scenario: one Erlang, one Elixir and one Go node that keep
# pinging each other. docker-compose.yml runs one role per container; the test
# TestComposeScenarioNative runs the same three roles on this machine.
#
# Usage: cluster.sh erlang|elixir|go
# Environment:
#   ERL_NODE, EX_NODE, GO_NODE  full node names (alive@host) of the three roles
#   ERLANG_COOKIE               the shared cookie (never on a command line for the Go node)
#   HTTP_ADDR                   go role: where /health, /healthz, /metrics listen (default :8080)
#   DISTRIBUTE                  go role: path of the distribute binary (default: distribute)
#   PING_EVERY                  seconds between ping rounds of the BEAM roles (default 2)
set -eu
: "${ERL_NODE:?}" "${EX_NODE:?}" "${GO_NODE:?}" "${ERLANG_COOKIE:?}"
every="${PING_EVERY:-2}"

case "${1:-}" in
erlang)
	exec erl -noshell -sname "$ERL_NODE" -setcookie "$ERLANG_COOKIE" -eval "
		Peers = [os:getenv(\"GO_NODE\"), os:getenv(\"EX_NODE\")],
		Loop = fun L() ->
			[io:format(\"scenario ~s: ~s ~s~n\", [node(), P, net_adm:ping(list_to_atom(P))]) || P <- Peers],
			timer:sleep($every * 1000),
			L()
		end,
		Loop()."
	;;
elixir)
	exec elixir --sname "$EX_NODE" --cookie "$ERLANG_COOKIE" -e "
		peers = [System.get_env(\"GO_NODE\"), System.get_env(\"ERL_NODE\")]
		Stream.interval($every * 1000)
		|> Enum.each(fn _ ->
			for p <- peers, do: IO.puts(\"scenario #{node()}: #{p} #{Node.ping(String.to_atom(p))}\")
		end)"
	;;
go)
	exec "${DISTRIBUTE:-distribute}" run --name "$GO_NODE" \
		--connect "$ERL_NODE" --connect "$EX_NODE" --http "${HTTP_ADDR:-:8080}"
	;;
*)
	echo "usage: $0 erlang|elixir|go" >&2
	exit 2
	;;
esac
