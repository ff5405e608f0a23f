/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kinds.c - the one table of receiver kinds. Adding a kind is one extern and
 * one line here, plus its receiver_<kind>.c and a line in meson.build; the
 * configuration's kind keys and its messages derive from this table.
 * Sorted by name.
 */
#include "alerts/relay/receiver.h"

extern const struct cw_receiver_kind cw_recv_aliyun_sms;
extern const struct cw_receiver_kind cw_recv_dingtalk;
extern const struct cw_receiver_kind cw_recv_email;
extern const struct cw_receiver_kind cw_recv_webhook;

/* One kind a line, whatever clang-format would pack. */
/* clang-format off */
const struct cw_receiver_kind *const cw_receiver_kinds[] = {
    &cw_recv_aliyun_sms,
    &cw_recv_dingtalk,
    &cw_recv_email,
    &cw_recv_webhook,
    NULL,
};
/* clang-format on */
