# SPDX-License-Identifier: Apache-2.0
"""relay_smtpd_reject.py - an aiosmtpd handler for connwatch-relay's tests:
answers 554 (SMTP's permanent refusal) to a message whose decoded text
contains the word in $REJECT_WORD, and stores every other message as
one file in $MAILDIR/new. Use: python3 -m aiosmtpd -n -l HOST:PORT
-c relay_smtpd_reject.Rejecter (with tests/lib on PYTHONPATH)."""
import email
import email.policy
import os
import uuid


class Rejecter:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = str(msg["Subject"]) + "".join(
            p.get_content() for p in msg.walk() if p.get_content_maintype() == "text")
        word = os.environ.get("REJECT_WORD", "")
        if word and word in text:
            return "554 5.6.0 message refused"
        path = os.path.join(os.environ["MAILDIR"], "new", uuid.uuid4().hex)
        with open(path, "wb") as f:
            f.write(envelope.content)
        return "250 OK"
