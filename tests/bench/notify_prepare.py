"""Prepares the payment-notification benchmark (tests/bench/notify_bench.sh):
N customers with a billed month, an open Alipay order for each invoice, an
Alipay key pair, and N notifications signed with it (one per line, as
Alipay would POST them).   python3 notify_prepare.py BIN DIR N"""
import base64
import os
import sqlite3
import subprocess
import sys
import urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

bin_, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = os.path.join(d, "var", "bb.db")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from test_billing import code_of  # noqa: E402  (the customer codes with their check digit)

subprocess.run([bin_, "init", "--db", db], check=True, stdout=subprocess.DEVNULL)
con = sqlite3.connect(db)
con.execute("INSERT INTO products (id, code, kind, name, status, created_at, created_by) "
            "VALUES (1, 'FIB129', 'plan', 'Fiber 129', 'active', 't', 't')")
con.execute("INSERT INTO product_versions (product_id, version, effective_from, price, price_includes_tax, tax_category, "
            "rule, params, attrs, created_at, created_by) VALUES (1, 1, '2020-01-01', 12900, 1, 'internet', "
            "'tariffs.monthly', '{}', '{\"period\":\"month\",\"billing\":\"postpaid\",\"min_contract_months\":0}', 't', 't')")
con.executemany("INSERT INTO customers (id, code, type, name, status, created_at, created_by, updated_at) "
                "VALUES (?, ?, 'residential', 'Test', 'active', '2026-01-01T00:00:00.000Z', 't', 't')",
                [(i, code_of(i)) for i in range(1, n + 1)])
con.executemany("INSERT INTO subscriptions (id, customer_id, product_id, status, billing, period, start_date, anchor_day, "
                "next_bill_date, created_at, created_by) VALUES (?, ?, 1, 'active', 'postpaid', 'month', '2026-10-01', 1, "
                "'2026-11-01', 't', 't')", [(i, i) for i in range(1, n + 1)])
con.commit()
subprocess.run([bin_, "bill", "run", "--period", "2026-10", "--db", db, "--rules", os.path.join(d, "rules")],
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
rows = con.execute("SELECT id, customer_id, gross FROM invoices ORDER BY id").fetchall()
con.executemany("INSERT INTO payment_orders (out_trade_no, channel, customer_id, invoice_id, amount, status, expires_at, "
                "created_at, created_by) VALUES (?, 'alipay', ?, ?, ?, 'open', '2099-01-01T00:00:00.000Z', 't', 'bench')",
                [("BB20261128%08d" % i, c, i, g) for i, c, g in rows])
con.commit()
con.close()

key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
with open(os.path.join(d, "alipay_pub.pem"), "wb") as f:
    f.write(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
with open(os.path.join(d, "bodies.txt"), "w") as out:
    for i, c, g in rows:
        f = {"notify_type": "trade_status_sync", "notify_id": "n%d" % i, "app_id": "2021000000000001",
             "seller_id": "2088000000000001", "out_trade_no": "BB20261128%08d" % i,
             "trade_no": "2026112822%018d" % i, "trade_status": "TRADE_SUCCESS",
             "total_amount": "%d.%02d" % divmod(g, 100), "gmt_payment": "2026-11-28 10:00:00",
             "subject": "宽带账单", "buyer_id": "2088102534368455"}
        canon = "&".join("%s=%s" % (k, v) for k, v in sorted(f.items()))
        sig = base64.b64encode(key.sign(canon.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
        out.write(urllib.parse.urlencode(dict(f, sign=sig, sign_type="RSA2")) + "\n")
print("prepared %d invoices, orders and signed notifications" % len(rows))
