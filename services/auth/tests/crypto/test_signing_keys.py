import pytest

from mcp_auth_server.crypto.signing_keys import generate_key


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_a_kid_can_be_typed_as_a_command_line_argument(algorithm: str) -> None:
    # `mcp-auth keys retire <kid>`: a kid starting with "-" would be read as an option.
    kids = {generate_key(algorithm).kid for _ in range(64 if algorithm == "ES256" else 4)}
    assert len(kids) == len({kid for kid in kids if kid.isalnum()})
    assert all(len(kid) >= 16 for kid in kids)
