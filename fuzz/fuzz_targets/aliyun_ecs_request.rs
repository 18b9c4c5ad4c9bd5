//! The Alibaba ECS codec (RPC and ACS3) on any request. The checks are [`crossgate_fuzz::requests::aliyun_ecs_request`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crossgate_fuzz::requests::aliyun_ecs_request(data));
