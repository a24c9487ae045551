#!/usr/bin/env python3
"""Known-answer vectors for the RFC 5176 packets of plugins/radius
(tests/unit/test_radius.c), computed here from the RFC formulas with
Python's hashlib and hmac - independently of the C code:

  Message-Authenticator = HMAC-MD5(secret, packet with a zero Request
                          Authenticator and a zero Message-Authenticator)
  Request Authenticator = MD5(Code | Identifier | Length | 16 zero octets |
                          Attributes | secret)
  Response Authenticator = MD5(Code | Identifier | Length | Request
                          Authenticator | Attributes | secret)
  (a response's Message-Authenticator is computed with the Request
  Authenticator in its place)

The request's attributes are in the order the plugin writes them:
Message-Authenticator first, User-Name, Acct-Session-Id,
Framed-IP-Address, NAS-IP-Address, then the rate (vendor-specific).
Run it to regenerate vectors.txt: python3 make_vectors.py > vectors.txt"""

import hashlib
import hmac
import socket
import struct


def attr(t, v):
    return bytes([t, 2 + len(v)]) + v


def vsa(vendor, vtype, v):
    return attr(26, struct.pack(">I", vendor) + bytes([vtype, 2 + len(v)]) + v)


def ip(s):
    return socket.inet_aton(s)


def request(code, ident, secret, attrs):
    body = attr(80, bytes(16)) + b"".join(attrs)
    pkt = bytes([code, ident]) + struct.pack(">H", 20 + len(body)) + bytes(16) + body
    ma = hmac.new(secret, pkt, hashlib.md5).digest()
    pkt = pkt[:22] + ma + pkt[38:]
    auth = hashlib.md5(pkt + secret).digest()
    return pkt[:4] + auth + pkt[20:]


def response(code, ident, secret, req_auth, attrs, with_ma=False):
    body = (attr(80, bytes(16)) if with_ma else b"") + b"".join(attrs)
    pkt = bytes([code, ident]) + struct.pack(">H", 20 + len(body)) + req_auth + body
    if with_ma:
        ma = hmac.new(secret, pkt, hashlib.md5).digest()
        pkt = pkt[:22] + ma + pkt[38:]
    auth = hashlib.md5(pkt + secret).digest()
    return pkt[:4] + auth + pkt[20:]


def main():
    out = []
    s1 = b"testing123"
    disc = request(40, 7, s1, [attr(1, b"zs001"), attr(44, b"8100001A"), attr(8, ip("10.1.2.3")), attr(4, ip("127.0.0.1"))])
    out.append(("disconnect", disc))
    out.append(("disconnect_ack", response(41, 7, s1, disc[4:20], [])))
    out.append(("disconnect_nak_503", response(42, 7, s1, disc[4:20], [attr(101, struct.pack(">I", 503))], with_ma=True)))

    s2 = b"s3cr3t-NAS"
    coa = request(43, 200, s2, [attr(1, b"li.si@hz"), attr(44, b"81a0beef"), attr(8, ip("100.64.0.9")),
                                attr(4, ip("10.0.0.1")), vsa(14988, 8, b"2000k/2000k")])
    out.append(("coa_mikrotik", coa))
    out.append(("coa_mikrotik_ack_ma", response(44, 200, s2, coa[4:20], [], with_ma=True)))

    huawei = request(43, 1, s2, [attr(1, b"ww001"), attr(44, b"s-9"), attr(4, ip("10.0.0.2")),
                                 vsa(2011, 2, struct.pack(">I", 512000)), vsa(2011, 5, struct.pack(">I", 2000000))])
    out.append(("coa_huawei", huawei))
    for name, pkt in out:
        print(name, pkt.hex())


if __name__ == "__main__":
    main()
