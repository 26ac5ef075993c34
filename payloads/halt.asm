; The smallest guest: halt, and halt again if woken. Today it travels as a
; boot module; it runs as a guest once VM entry exists.
bits 64
halt:
    hlt
    jmp halt
