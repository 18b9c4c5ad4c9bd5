//! ECS upstream replies, JSON and XML, on any status and body. The checks are [`crossgate_fuzz::replies::aliyun_ecs_reply`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crossgate_fuzz::replies::aliyun_ecs_reply(data));
