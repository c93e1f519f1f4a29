# The exception tag that __wasm_longjmp throws and setjmp callers catch. Compiled code only
# references it; some object must define it, with an i32 (the payload pointer) as its type.
	.globl	__c_longjmp
	.tagtype	__c_longjmp i32
__c_longjmp:
