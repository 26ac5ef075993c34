; Guest-side asserts: one that holds, then one that fails on line 9, which
; the verdict must quote (scenario selftest-assert).
bits 64
org 0x8000
%include "assert.inc"

    mov rax, 5
    ASSERT_EQ(rax, 5)
    ASSERT_LT(rax, 3)
    hlt
