"""Modbus servers from pymodbus 3.11 (a peer nobody here wrote) for the
TLS tests: Modbus/TCP Security (MBAP over TLS, pymodbus' TLS framer) and
plain Modbus TCP, all serving the same registers of unit 1.

usage: python3 pymodbus_server.py SPEC_JSON
  SPEC = {"words": {"holding": {"ADDR": WORD, ...}, "input": {...}},
          "servers": [{"port": P}                                   plain TCP
                      {"port": P, "cert": F, "key": F}              TLS
                      {"port": P, "cert": F, "key": F, "client_ca": F}  TLS, client certificate required
                     ]}
ADDR is the 0-based protocol address. Runs until killed.
"""
import asyncio
import json
import ssl
import sys

from pymodbus.datastore import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)
from pymodbus.server import ModbusTcpServer, ModbusTlsServer


def block(words):
    values = [0] * 1000
    for address, word in words.items():
        values[int(address)] = word
    # pymodbus' device context adds 1 to the protocol address.
    return ModbusSequentialDataBlock(1, values)


def tls_context(server):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(server["cert"], server["key"])
    if server.get("client_ca"):
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(server["client_ca"])
    return ctx


async def main():
    spec = json.loads(sys.argv[1])
    words = spec["words"]
    unit = ModbusDeviceContext(
        hr=block(words.get("holding", {})), ir=block(words.get("input", {}))
    )
    context = ModbusServerContext(devices={1: unit}, single=False)
    servers = []
    for s in spec["servers"]:
        address = ("127.0.0.1", s["port"])
        if "cert" in s:
            servers.append(ModbusTlsServer(context, address=address, sslctx=tls_context(s)))
        else:
            servers.append(ModbusTcpServer(context, address=address))
    await asyncio.gather(*(server.serve_forever() for server in servers))


asyncio.run(main())
